"""Label definitions and JSON Schemas, installed as ``indomer.schemas`` package data."""
