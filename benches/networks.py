"""Benchmark peer: the same 200 networks with libvirt-python in one process."""
import sys

import libvirt

count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
conn = libvirt.open("test:///default")
xml = ("<network><name>bench{i}</name><forward mode='nat'/><bridge name='vbench{i}'/>"
       "<ip address='10.100.{i}.1' prefix='24'><dhcp>"
       "<range start='10.100.{i}.2' end='10.100.{i}.254'/></dhcp></ip></network>")
nets = [conn.networkDefineXML(xml.format(i=i)) for i in range(count)]
for n in nets:
    n.create()
for n in nets:
    n.destroy()
for n in nets:
    n.undefine()
print(f"{len(nets)} networks")
