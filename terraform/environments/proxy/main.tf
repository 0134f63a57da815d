module "proxy" {
  source = "../../modules/tls_proxy"

  domain                 = var.domain
  email                  = var.email
  live_env               = var.live_env
  target_ip              = var.target_ip
  app_security_group_ids = var.app_security_group_ids
  key_name               = var.key_name
  admin_cidr             = var.admin_cidr
  instance_type          = var.instance_type
  route53_zone_id        = var.route53_zone_id
}
