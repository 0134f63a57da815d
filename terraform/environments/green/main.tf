module "app" {
  source = "../../modules/app_host"

  environment         = "green"
  key_name            = var.key_name
  admin_cidr          = var.admin_cidr
  http_cidrs          = var.http_cidrs
  repo_url            = var.repo_url
  git_ref             = var.git_ref
  instance_type       = var.instance_type
  root_volume_size_gb = var.root_volume_size_gb
}
