# tflint over every module and environment (`cargo xtask test`, the terraform checks):
# the bundled terraform ruleset's recommended preset, and every variable and output
# described. It needs no plugin download.
config {
  call_module_type = "local"
}

plugin "terraform" {
  enabled = true
  preset  = "recommended"
}

rule "terraform_documented_variables" {
  enabled = true
}

rule "terraform_documented_outputs" {
  enabled = true
}
