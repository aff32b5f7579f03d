format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "110cfb66fec44976"
signature = "07dd8e7e7f2188e68772b05147681e4f03badccaaea637e37b08b994d11761c65d44ac1226a239d22fb6038d9c60a63d0814437ddb5ed5c0ad9cf251f5cd1102"
