# The application environments blue and green: one host each (modules/app_host), one
# workspace each. The local backend keeps each workspace's state under
# terraform.tfstate.d/<workspace>/ in this directory; a team would use a remote backend
# (S3 with locking) here instead.
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
