format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "38259c53269c680c"
signature = "38e1ff5f699759849d20bd5e28bf01f3ac7a8f34428b8b64df56a12a010094b38c039f167d7573b9236d6ca8cb312e6bea1c4ccb1a1afdb6dece39f74ed4330e"
