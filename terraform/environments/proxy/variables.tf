variable "region" {
  description = "AWS region to run in (the environments' region)."
  type        = string
  default     = "us-east-1"
}

variable "domain" {
  description = "The domain the proxy serves; its A record must point at the public_ip output."
  type        = string
}

variable "email" {
  description = "Contact address for the Let's Encrypt account."
  type        = string
}

variable "live_env" {
  description = "The environment to forward to: blue or green."
  type        = string
}

variable "target_ip" {
  description = "Private address of the live environment's host."
  type        = string
}

variable "app_security_group_ids" {
  description = "Security groups of the running environments by name, opened to the proxy on port 80."
  type        = map(string)
}

variable "key_name" {
  description = "Name of an existing EC2 key pair whose private key may SSH in as ubuntu."
  type        = string
}

variable "admin_cidr" {
  description = "The one CIDR allowed to SSH in, e.g. 203.0.113.7/32."
  type        = string
}

variable "instance_type" {
  description = "EC2 instance type of the proxy."
  type        = string
  default     = "t3.micro"
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone of the domain, to create its A record here; null: point it yourself."
  type        = string
  default     = null
}
