"""Data-centre controls (framework section 3): regions, servers, encryption, backup, logs, Key Vault,
platform contract."""
