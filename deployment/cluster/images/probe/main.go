// Command probe is the workload of the cluster test (`cargo xtask cluster test`).
//
//	probe serve ADDR       answers every HTTP request with "probe <hostname>\n"
//	probe get URL...       GETs each URL (its host resolved through the pod's DNS, so a
//	                       Service name proves CoreDNS and kube-proxy) and prints the body;
//	                       exits 1 on the first failure
//	probe lookup NAME...   resolves each name and prints its addresses
//
// Go's own resolver reads /etc/resolv.conf, which the kubelet writes to point at the
// cluster DNS: no libc is needed, so the image is FROM scratch.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: probe serve ADDR | probe get URL... | probe lookup NAME...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2])
	case "get":
		for _, url := range os.Args[2:] {
			if err := get(url); err != nil {
				fmt.Fprintf(os.Stderr, "GET %s: %v\n", url, err)
				os.Exit(1)
			}
		}
	case "lookup":
		for _, name := range os.Args[2:] {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			addrs, err := net.DefaultResolver.LookupHost(ctx, name)
			cancel()
			if err != nil {
				fmt.Fprintf(os.Stderr, "lookup %s: %v\n", name, err)
				os.Exit(1)
			}
			fmt.Printf("%s %v\n", name, addrs)
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

func serve(addr string) {
	host, _ := os.Hostname()
	server := &http.Server{
		Addr:              addr,
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "probe %s\n", host)
		}),
	}
	// SIGTERM: stop at once, as the kubelet asks when the pod is deleted.
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
		<-stop
		os.Exit(0)
	}()
	if err := server.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func get(url string) error {
	client := &http.Client{Timeout: 5 * time.Second}
	response, err := client.Get(url)
	if err != nil {
		return err
	}
	defer response.Body.Close()
	body, err := io.ReadAll(io.LimitReader(response.Body, 4096))
	if err != nil {
		return err
	}
	if response.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", response.StatusCode, body)
	}
	fmt.Printf("%s %s", url, body)
	return nil
}
