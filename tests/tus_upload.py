"""Uploads one file with tuspy (the tus project's Python client), retrying after network
errors, and prints a JSON summary: the offset of every PATCH it sent. Run by
tests/tus_clients.rs, which puts a TCP relay that cuts the connection between this client
and upgate."""
import json
import os
import sys

import urllib3
from tusclient import client
from tusclient.uploader import Uploader

urllib3.disable_warnings()  # the test gateway's certificate is self-signed

patches = []


class Recording(Uploader):
    def upload_chunk(self):
        patches.append(self.offset)
        return super().upload_chunk()


tus = client.TusClient(os.environ["TUS_ENDPOINT"])
uploader = Recording(
    file_path=os.environ["TUS_FILE"],
    client=tus,
    chunk_size=int(os.environ["TUS_CHUNK"]),
    metadata={"filename": os.environ["TUS_NAME"]},
    retries=5,
    retry_delay=0.2,
    verify_tls_cert=False,
)
uploader.upload()
json.dump({"patches": patches, "url": uploader.url is not None}, sys.stdout)
