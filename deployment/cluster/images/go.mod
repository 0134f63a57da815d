// The two small programs of the cluster's own images, standard library only, built static
// (CGO_ENABLED=0) by xtask/src/cluster/ into FROM-scratch images: `pause`, the pod sandbox,
// and `probe`, which serves HTTP and checks Services and DNS from inside a pod.
module kafka-cqrs/cluster-images

go 1.26.0
