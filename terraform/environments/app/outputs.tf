output "url" {
  description = "The GUI through this environment's own gateway."
  value       = module.app.url
}

output "gateway_url" {
  description = "This environment's gateway, for health checks and cargo xtask e2e --gateway."
  value       = module.app.gateway_url
}

output "instance_id" {
  description = "The EC2 instance."
  value       = module.app.instance_id
}

output "public_ip" {
  description = "The host's public address."
  value       = module.app.public_ip
}

output "private_ip" {
  description = "The host's address inside the VPC, which the TLS proxy forwards to."
  value       = module.app.private_ip
}

output "security_group_id" {
  description = "The host's security group."
  value       = module.app.security_group_id
}

output "log_command" {
  description = "Tails the provisioning log."
  value       = module.app.log_command
}
