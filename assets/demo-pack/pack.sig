format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "041d1acfd248afcd"
signature = "e147a07a147dc5adaf9fb2c74250d743141e63affa25130edc1b5503896dab782dcc6f9c289e2f6e859c630814ae503e4626883f8010dc2ffd45f310e84d9a02"
