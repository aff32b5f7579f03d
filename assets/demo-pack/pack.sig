format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "97a85d1faf3343dd"
signature = "adbd6b73bba76ea27dfbc36a6f780204e77bdf24fb630a0ef5493222353607061fe807b6e1dbd5ceb7d3ac99d00139a872b4a03d754613eab84a2cb6860cf907"
