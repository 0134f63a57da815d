variable "region" {
  description = "AWS region to run in."
  type        = string
  default     = "us-east-1"
}

variable "key_name" {
  description = "Name of an existing EC2 key pair whose private key may SSH in as ubuntu."
  type        = string
}

variable "admin_cidr" {
  description = "The one CIDR allowed to SSH in and to reach the host's gateway directly, e.g. 203.0.113.7/32."
  type        = string
}

variable "http_cidrs" {
  description = "Further CIDRs allowed to the host's gateway without the TLS proxy."
  type        = list(string)
  default     = []
}

variable "repo_url" {
  description = "HTTPS URL of this repository that the host clones, without credentials."
  type        = string
}

variable "git_ref" {
  description = "Branch, tag or commit to build and run."
  type        = string
  default     = "main"
}

variable "instance_type" {
  description = "EC2 instance type of the host."
  type        = string
  default     = "t3.xlarge"
}

variable "root_volume_size_gb" {
  description = "Size of the host's encrypted root volume."
  type        = number
  default     = 60
}
