//! virtscript's integration tests: the real binary, real libvirt.
//! Most run on the embedded test driver (each process has its own); tests
//! whose names start with `live_` use the private daemon started by tools/test.sh.
mod conformance;
mod support;

mod cli;
mod clones;
mod devices;
mod doc_examples;
mod faults;
mod host_objects;
mod hosts;
mod integrity;
mod jobs;
mod migration;
mod network;
mod network_conformance;
mod parity;
mod phases;
mod properties;
mod recipes;
mod repl;
mod security;
mod storage;
mod storage_xml;
mod vm_keys;
mod vm_platform;
mod vms;
