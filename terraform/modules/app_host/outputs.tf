output "url" {
  description = "The GUI through this host's own gateway."
  value       = "http://${aws_instance.host.public_ip}/gui/"
}

output "gateway_url" {
  description = "This host's gateway, for health checks and cargo xtask e2e --gateway."
  value       = "http://${aws_instance.host.public_ip}"
}

output "instance_id" {
  description = "The EC2 instance."
  value       = aws_instance.host.id
}

output "public_ip" {
  description = "Public address (changes when the instance is stopped and started)."
  value       = aws_instance.host.public_ip
}

output "private_ip" {
  description = "Address inside the VPC that the TLS proxy forwards to."
  value       = aws_instance.host.private_ip
}

output "security_group_id" {
  description = "The host's security group, which the TLS proxy opens port 80 of."
  value       = aws_security_group.host.id
}

output "log_command" {
  description = "Tails the provisioning log (the key pair's private key in ~/.ssh/KEY_NAME.pem)."
  value       = "ssh -i ~/.ssh/${var.key_name}.pem ubuntu@${aws_instance.host.public_ip} tail -n +1 -f /var/log/cloud-init-output.log"
}
