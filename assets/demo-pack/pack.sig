format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "33c03e8bdede31f0"
signature = "a389259261505bd173b1a060bd2bb90d12b84d6d1bc7d00e967d88351c13433b6bc1c7d5d32d643d3d9c06877385f8eac7149304bf4e9a60e79ef22e39f95d01"
