format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "f92647fd015e1406"
signature = "7cf07b23a8e243674e9959fabae1498db33d7e142d8db7f2c0bd3a5d869b010932c982350a21c725d13e85f7817962a9f411c8481c4294e194927c3450e4780e"
