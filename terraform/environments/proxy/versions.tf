# The TLS proxy in front of blue and green (modules/tls_proxy), with its own state.
# `cargo xtask ec2 switch --to ENV` applies it with that environment as live_env.
terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }

  backend "local" {
    path = "terraform.tfstate"
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project   = "kafka-cqrs"
      ManagedBy = "cargo xtask ec2"
    }
  }
}
