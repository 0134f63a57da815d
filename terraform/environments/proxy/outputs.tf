output "url" {
  description = "The GUI through the TLS proxy."
  value       = module.proxy.url
}

output "proxy_url" {
  description = "The proxy's base URL; its X-Kafka-Cqrs-Environment header names the live environment."
  value       = module.proxy.proxy_url
}

output "instance_id" {
  description = "The proxy's EC2 instance."
  value       = module.proxy.instance_id
}

output "public_ip" {
  description = "The proxy's Elastic IP, where the domain's A record points."
  value       = module.proxy.public_ip
}

output "live_env" {
  description = "The environment the proxy forwards to."
  value       = module.proxy.live_env
}

output "target_ip" {
  description = "The live environment's private address."
  value       = module.proxy.target_ip
}

output "log_command" {
  description = "Tails the proxy's provisioning log."
  value       = module.proxy.log_command
}
