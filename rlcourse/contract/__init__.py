"""The experiment contract: run folders and their JSON schema, the training configuration, the policy protocol,
the one evaluation loop, and the run writer that every training backend writes through."""
