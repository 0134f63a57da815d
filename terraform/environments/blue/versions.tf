# The blue environment: one application host (modules/app_host), with its own state.
# The local backend keeps the state in this directory, apart from the other environments';
# a team would use a remote backend (S3 with locking) here instead.
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
