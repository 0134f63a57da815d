# tflint over every module and environment (`cargo xtask test`, the terraform checks):
# the bundled terraform ruleset's recommended preset. It needs no plugin download.
config {
  call_module_type = "local"
}

plugin "terraform" {
  enabled = true
  preset  = "recommended"
}
