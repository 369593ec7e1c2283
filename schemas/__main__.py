"""`python -m schemas` writes the generated Avro schemas to schemas/avro/ (review the diff)."""

from __future__ import annotations

import json

from schemas import EVENT_TYPES
from schemas.avro import AVRO_DIR, avro_schema


def main() -> None:
    AVRO_DIR.mkdir(exist_ok=True)
    for name, model in EVENT_TYPES.items():
        path = AVRO_DIR / f"{name}.avsc"
        path.write_text(json.dumps(avro_schema(model), indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
