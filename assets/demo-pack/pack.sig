format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "66c3073d4bd965dc"
signature = "8dadbed370342f67847d0469edd90dd2349c8bfdfb30c619eb1f0da4bcc54fb3382bbfee0ee177b02595cf2dba1094b118578ef0a573b7868afcdb9f67be2103"
