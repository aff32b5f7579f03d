format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "59f86bdbf355bc2d"
signature = "421073b5d90559d1c5e69d7b0b6fa4b2be148f534190692dcb1b43d27971d9c71d048df87ee71d60e73eb1efd56040f25fabebdb1467c50fa572b776584f4104"
