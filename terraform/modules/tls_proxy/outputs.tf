output "url" {
  description = "The GUI through the TLS proxy."
  value       = "https://${var.domain}/gui/"
}

output "proxy_url" {
  description = "The proxy's base URL, whose X-Kafka-Cqrs-Environment header names the live environment."
  value       = "https://${var.domain}"
}

output "instance_id" {
  description = "The proxy's EC2 instance."
  value       = aws_instance.proxy.id
}

output "public_ip" {
  description = "The proxy's Elastic IP: the domain's A record points here."
  value       = aws_eip.proxy.public_ip
}

output "live_env" {
  description = "The environment the proxy forwards to."
  value       = var.live_env
}

output "target_ip" {
  description = "The live environment's private address."
  value       = var.target_ip
}

output "log_command" {
  description = "Tails the proxy's provisioning log (the key pair's private key in ~/.ssh/KEY_NAME.pem)."
  value       = "ssh -i ~/.ssh/${var.key_name}.pem ubuntu@${aws_eip.proxy.public_ip} tail -n +1 -f /var/log/cloud-init-output.log"
}
