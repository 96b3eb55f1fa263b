"""Blob helper for Medallion's tests: plays the uploading store (the Azure SDK for Python) against
Azurite. Usage: azblob.py <blob-endpoint> <command> [args]
  mkcontainer <container>            create a container (ok if it exists)
  upload <container> <blob> <file>   upload a file, print its ETag
  list <container> [prefix]          print blob names, one per line
  download <container> <prefix> <dir> download every blob under prefix into dir (flat names)
  sas <container>                    print a container SAS token (read, add, create, write, delete, list; 1 hour)
"""
import os
import sys

from azure.storage.blob import BlobServiceClient

KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def main():
    endpoint, command, *args = sys.argv[1:]
    conn = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={KEY};BlobEndpoint={endpoint}/devstoreaccount1;"
    )
    svc = BlobServiceClient.from_connection_string(conn)
    if command == "mkcontainer":
        c = svc.get_container_client(args[0])
        if not c.exists():
            c.create_container()
    elif command == "upload":
        container, blob, path = args
        with open(path, "rb") as f:
            props = svc.get_blob_client(container, blob).upload_blob(f, overwrite=True)
        print(props["etag"])
    elif command == "list":
        prefix = args[1] if len(args) > 1 else None
        for b in svc.get_container_client(args[0]).list_blobs(name_starts_with=prefix):
            print(b.name)
    elif command == "download":
        container, prefix, out = args
        os.makedirs(out, exist_ok=True)
        c = svc.get_container_client(container)
        for b in c.list_blobs(name_starts_with=prefix):
            with open(os.path.join(out, b.name.rsplit("/", 1)[-1]), "wb") as f:
                f.write(c.download_blob(b.name).readall())
    elif command == "sas":
        import datetime

        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        print(
            generate_container_sas(
                "devstoreaccount1",
                args[0],
                account_key=KEY,
                permission=ContainerSasPermissions(read=True, add=True, create=True, write=True, delete=True, list=True),
                expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1),
            )
        )
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
