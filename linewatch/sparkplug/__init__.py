"""Sparkplug B (spBv1.0): the payload schema, its generated module and shared helpers.

- `sparkplug_b.proto`: the payload schema, written from the Sparkplug 3.0 specification.
- `sparkplug_b_pb2`: GENERATED from it by protoc (see `codec`); never edit by hand.
- `codec`: topics, datatypes, metric values, payload encode/decode (docs/mqtt.md).
"""
