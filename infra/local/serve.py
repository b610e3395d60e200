"""`make serve`: the local stack in the foreground until Ctrl-C."""

from __future__ import annotations

import logging
import os
import threading

from infra.local.stack import local_stack


def main() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING"))
    port = int(os.environ.get("PORT", "8000"))
    with local_stack(port=port) as (cloud, gateway):
        print(f"Render service running at {gateway.url}", flush=True)
        print(f"  web app: {gateway.url}/   CLI: render --help", flush=True)
        print(f"  try: curl -s {gateway.url}/health", flush=True)
        print(f"  API docs: {gateway.url}/docs   auth: 'Authorization: Bearer local:<userId>'", flush=True)
        admins = ", ".join(sorted(gateway.admin_users)) or "none (set ADMIN_USERS)"
        print(f"  admins (the /admin routes): {admins}", flush=True)
        print(f"  AWS (moto) endpoint: {cloud.endpoint}  bucket: {cloud.bucket_name}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping", flush=True)


if __name__ == "__main__":
    main()
