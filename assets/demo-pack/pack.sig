format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "700fb217badbc2a2"
signature = "6b3e919a18ea984c43cc3dea4f938792209056e01a0e48a0d135b0f2c59da062b5368b69d62e2ae8b59125e4a8a140887aeb757684819d63ed1acf2f69d8ef03"
