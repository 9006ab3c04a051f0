#!/usr/bin/python3
"""The floor client for one live migration (benches/migration.sh): the least
any client can do for the same request. It opens both hosts, makes one
virDomainMigrate3 call with the flags and URI virtscript uses, and checks
nothing first.

    benches/migrate_floor.py SOURCE_URI DEST_URI MIGRATE_URI DOMAIN
"""
import sys

import libvirt

src_uri, dest_uri, migrate_uri, name = sys.argv[1:5]
src = libvirt.open(src_uri)
dest = libvirt.open(dest_uri)
flags = (
    libvirt.VIR_MIGRATE_LIVE
    | libvirt.VIR_MIGRATE_PERSIST_DEST
    | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
)
src.lookupByName(name).migrate3(dest, {libvirt.VIR_MIGRATE_PARAM_URI: migrate_uri}, flags)
