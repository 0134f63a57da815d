# One root for both colours: `cargo xtask ec2` runs it in the workspace blue or green
# (`tofu workspace select -or-create blue`), which keeps a state of its own and names the
# host; the default workspace is neither, and the module refuses it.
module "app" {
  source = "../../modules/app_host"

  environment         = terraform.workspace
  key_name            = var.key_name
  admin_cidr          = var.admin_cidr
  http_cidrs          = var.http_cidrs
  repo_url            = var.repo_url
  git_ref             = var.git_ref
  instance_type       = var.instance_type
  root_volume_size_gb = var.root_volume_size_gb
}
