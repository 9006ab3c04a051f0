"""The least any client can do to make the lab of benches/recipes.sh: fixed
XML (the documents lab::up makes, without its checks, metadata or reports),
libvirt-python, everything that can overlap run in parallel threads (the
network beside the five linked clones, then the five VMs defined and started
at once). What this takes is the daemon's and QEMU's share of a lab, the floor
under every tool on this machine.

usage: lab_floor.py URI POOL BASE_VOLUME NAME COUNT   (tear down: NAME down)
"""
import sys
import threading

import libvirt

uri, pool_name, base, name, count = sys.argv[1:6]
count = int(count)
conn = libvirt.open(uri)
pool = conn.storagePoolLookupByName(pool_name)


def all_at_once(jobs):
    threads = [threading.Thread(target=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if len(sys.argv) > 6 and sys.argv[6] == "down":
    for i in range(1, count + 1):
        for step in (lambda: conn.lookupByName(f"{name}-{i}").destroy(),
                     lambda: conn.lookupByName(f"{name}-{i}").undefine(),
                     lambda: pool.storageVolLookupByName(f"{name}-{i}.qcow2").delete()):
            try:
                step()
            except libvirt.libvirtError:
                pass
    for step in (lambda: conn.networkLookupByName(name).destroy(),
                 lambda: conn.networkLookupByName(name).undefine()):
        try:
            step()
        except libvirt.libvirtError:
            pass
    sys.exit(0)

base_path = pool.storageVolLookupByName(base).path()
target = pool.XMLDesc().split("<path>")[1].split("</path>")[0]


def network():
    net = conn.networkDefineXML(f"""<network><name>{name}</name><forward mode='nat'/>
      <ip address='10.240.3.1' prefix='24'><dhcp><range start='10.240.3.2' end='10.240.3.254'/></dhcp></ip>
      </network>""")
    net.setAutostart(1)
    net.create()


def clone(i):
    pool.createXML(f"""<volume><name>{name}-{i}.qcow2</name><capacity>64</capacity>
      <target><format type='qcow2'/></target>
      <backingStore><path>{base_path}</path><format type='qcow2'/></backingStore></volume>""")


def vm(i):
    dom = conn.defineXML(f"""<domain type='qemu'><name>{name}-{i}</name>
      <memory unit='MiB'>96</memory><vcpu>1</vcpu>
      <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
      <features><acpi/><apic/></features>
      <devices>
        <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
          <source file='{target}/{name}-{i}.qcow2'/><target dev='vda' bus='virtio'/></disk>
        <interface type='network'><source network='{name}'/><model type='virtio'/></interface>
        <serial type='pty'/><console type='pty'/>
        <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
      </devices></domain>""")
    dom.create()


all_at_once([network] + [lambda i=i: clone(i) for i in range(1, count + 1)])
all_at_once([lambda i=i: vm(i) for i in range(1, count + 1)])
print(f"{count} VMs")
