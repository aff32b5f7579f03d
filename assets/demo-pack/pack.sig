format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "3842480f04e25273"
signature = "986352701437ac031cc64a442048234dad9468a799ee67daf87ddb1946e037a9b0f10c36d55672611722bd4e4255b9d9fcf3b5f8e0a58edcd04cc613a2ce7508"
