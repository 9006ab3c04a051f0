//! A minimal ISO 9660 image writer with Joliet names, enough for a cloud-init
//! NoCloud seed (volume id `cidata`, files `user-data`, `meta-data`,
//! `network-config` in the root directory) or a small test CD. One flat root
//! directory, files of any size; no Rock Ridge, no El Torito.
const SECTOR: usize = 2048;

fn both16(v: u16) -> [u8; 4] {
    let l = v.to_le_bytes();
    let b = v.to_be_bytes();
    [l[0], l[1], b[0], b[1]]
}

fn both32(v: u32) -> [u8; 8] {
    let l = v.to_le_bytes();
    let b = v.to_be_bytes();
    [l[0], l[1], l[2], l[3], b[0], b[1], b[2], b[3]]
}

/// Fixed recording time (2024-01-01 00:00:00 UTC): images are reproducible.
const DIR_DATE: [u8; 7] = [124, 1, 1, 0, 0, 0, 0];
const VOL_DATE: &[u8; 17] = b"2024010100000000\0";

fn dir_record(lba: u32, len: u32, is_dir: bool, name: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8; 33];
    r[2..10].copy_from_slice(&both32(lba));
    r[10..18].copy_from_slice(&both32(len));
    r[18..25].copy_from_slice(&DIR_DATE);
    r[25] = if is_dir { 2 } else { 0 };
    r[28..32].copy_from_slice(&both16(1));
    r[32] = name.len() as u8;
    r.extend_from_slice(name);
    if r.len() % 2 == 1 {
        r.push(0);
    }
    r[0] = r.len() as u8;
    r
}

/// ISO 9660 level 1 name: `USER_DAT.;1`.
fn primary_name(name: &str, taken: &mut Vec<Vec<u8>>) -> Vec<u8> {
    let clean = |s: &str, n: usize| -> String {
        s.chars()
            .map(|c| {
                let c = c.to_ascii_uppercase();
                if c.is_ascii_uppercase() || c.is_ascii_digit() {
                    c
                } else {
                    '_'
                }
            })
            .take(n)
            .collect()
    };
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, e),
        _ => (name, ""),
    };
    let mut stem = clean(stem, 8);
    let ext = clean(ext, 3);
    let mut n = 0;
    loop {
        let candidate = format!("{stem}.{ext};1").into_bytes();
        if !taken.contains(&candidate) {
            taken.push(candidate.clone());
            return candidate;
        }
        n += 1;
        let suffix = n.to_string();
        stem = format!("{}{}", &stem[..stem.len().min(8 - suffix.len())], suffix);
    }
}

fn ucs2(s: &str, max_bytes: usize) -> Vec<u8> {
    s.encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .take(max_bytes)
        .collect()
}

fn padded(field: &mut [u8], text: &[u8], pad: &[u8]) {
    for (i, b) in field.iter_mut().enumerate() {
        *b = if i < text.len() {
            text[i]
        } else {
            pad[(i - text.len()) % pad.len()]
        };
    }
}

fn volume_descriptor(
    joliet: bool,
    volume_id: &str,
    total: u32,
    root: &[u8],
    l_path: u32,
    m_path: u32,
) -> Vec<u8> {
    let mut d = vec![0u8; SECTOR];
    d[0] = if joliet { 2 } else { 1 };
    d[1..6].copy_from_slice(b"CD001");
    d[6] = 1;
    let (text_pad, id): (&[u8], Vec<u8>) = if joliet {
        (&[0, 0x20], ucs2(volume_id, 32))
    } else {
        (
            b" ",
            volume_id.as_bytes().iter().take(32).copied().collect(),
        )
    };
    padded(&mut d[8..40], &[], text_pad);
    padded(&mut d[40..72], &id, text_pad);
    d[80..88].copy_from_slice(&both32(total));
    if joliet {
        d[88..91].copy_from_slice(&[0x25, 0x2F, 0x45]);
    }
    d[120..124].copy_from_slice(&both16(1));
    d[124..128].copy_from_slice(&both16(1));
    d[128..132].copy_from_slice(&both16(SECTOR as u16));
    d[132..140].copy_from_slice(&both32(10));
    d[140..144].copy_from_slice(&l_path.to_le_bytes());
    d[148..152].copy_from_slice(&m_path.to_be_bytes());
    d[156..156 + root.len()].copy_from_slice(root);
    for range in [
        190..318,
        318..446,
        446..574,
        574..702,
        702..739,
        739..776,
        776..813,
    ] {
        padded(&mut d[range], &[], text_pad);
    }
    d[813..830].copy_from_slice(VOL_DATE);
    d[830..847].copy_from_slice(VOL_DATE);
    d[847..863].copy_from_slice(b"0000000000000000");
    d[864..881].copy_from_slice(VOL_DATE);
    d[881] = 1;
    d
}

fn path_table(root_lba: u32, big_endian: bool) -> Vec<u8> {
    let mut t = vec![0u8; SECTOR];
    t[0] = 1;
    let (lba, parent) = if big_endian {
        (root_lba.to_be_bytes(), 1u16.to_be_bytes())
    } else {
        (root_lba.to_le_bytes(), 1u16.to_le_bytes())
    };
    t[2..6].copy_from_slice(&lba);
    t[6..8].copy_from_slice(&parent);
    t
}

/// Build an image holding `files` (name, content) in its root directory.
pub fn build(volume_id: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    // Sectors: 16 system, PVD, SVD, terminator, 4 path tables, 2 root dirs, data.
    let mut primary_names = Vec::new();
    let names: Vec<(Vec<u8>, Vec<u8>)> = files
        .iter()
        .map(|(n, _)| (primary_name(n, &mut primary_names), ucs2(n, 206)))
        .collect();
    let dir_size = |joliet: bool| -> usize {
        34 + 34
            + names
                .iter()
                .map(|(p, j)| dir_record(0, 0, false, if joliet { j } else { p }).len())
                .sum::<usize>()
    };
    let root_sectors = |joliet: bool| dir_size(joliet).div_ceil(SECTOR).max(1) as u32;
    let root_p = 23u32;
    let root_j = root_p + root_sectors(false);
    let mut next = root_j + root_sectors(true);
    let mut extents = Vec::new();
    for (_, data) in files {
        extents.push(next);
        next += (data.len().div_ceil(SECTOR)).max(1) as u32;
    }
    let total = next;

    let root_dir = |joliet: bool| -> Vec<u8> {
        let own = if joliet { root_j } else { root_p };
        let size = root_sectors(joliet) * SECTOR as u32;
        let mut dir = dir_record(own, size, true, &[0]);
        dir.extend(dir_record(own, size, true, &[1]));
        for (i, (p, j)) in names.iter().enumerate() {
            let rec = dir_record(
                extents[i],
                files[i].1.len() as u32,
                false,
                if joliet { j } else { p },
            );
            // Records never cross a sector boundary.
            let room = SECTOR - dir.len() % SECTOR;
            if rec.len() > room {
                dir.resize(dir.len() + room, 0);
            }
            dir.extend(rec);
        }
        dir.resize(size as usize, 0);
        dir
    };
    let root_record = |joliet: bool| {
        dir_record(
            if joliet { root_j } else { root_p },
            root_sectors(joliet) * SECTOR as u32,
            true,
            &[0],
        )
    };

    let mut out = vec![0u8; 16 * SECTOR];
    out.extend(volume_descriptor(
        false,
        volume_id,
        total,
        &root_record(false),
        19,
        20,
    ));
    out.extend(volume_descriptor(
        true,
        volume_id,
        total,
        &root_record(true),
        21,
        22,
    ));
    let mut term = vec![0u8; SECTOR];
    term[0] = 255;
    term[1..6].copy_from_slice(b"CD001");
    term[6] = 1;
    out.extend(term);
    out.extend(path_table(root_p, false));
    out.extend(path_table(root_p, true));
    out.extend(path_table(root_j, false));
    out.extend(path_table(root_j, true));
    out.extend(root_dir(false));
    out.extend(root_dir(true));
    for (_, data) in files {
        out.extend_from_slice(data);
        let pad = (SECTOR - data.len() % SECTOR) % SECTOR;
        let pad = if data.is_empty() { SECTOR } else { pad };
        out.resize(out.len() + pad, 0);
    }
    debug_assert_eq!(out.len(), total as usize * SECTOR);
    out
}

/// The identification fields of an ISO 9660 image's primary volume
/// descriptor (sector 16), as libosinfo matches install media by them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VolumeInfo {
    pub system_id: String,
    pub volume_id: String,
    pub publisher_id: String,
    pub application_id: String,
    /// Bytes: the volume space size times the logical block size.
    pub volume_size: u64,
}

/// Read the primary volume descriptor of the ISO image at `path` (the first
/// 36 KiB are read); `None` when it is not an ISO 9660 image.
pub fn read_volume_info(path: &std::path::Path) -> std::io::Result<Option<VolumeInfo>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let mut sector = vec![0u8; SECTOR];
    // Descriptors start at sector 16; the primary one (type 1) comes first
    // in practice, but a boot record may precede it.
    for n in 16..32u64 {
        file.seek(SeekFrom::Start(n * SECTOR as u64))?;
        if file.read_exact(&mut sector).is_err() {
            return Ok(None);
        }
        if &sector[1..6] != b"CD001" {
            return Ok(None);
        }
        match sector[0] {
            1 => return Ok(Some(volume_info(&sector))),
            255 => return Ok(None),
            _ => {}
        }
    }
    Ok(None)
}

fn volume_info(pvd: &[u8]) -> VolumeInfo {
    let text = |from: usize, len: usize| {
        String::from_utf8_lossy(&pvd[from..from + len])
            .trim_end_matches([' ', '\0'])
            .to_owned()
    };
    let blocks = u32::from_le_bytes([pvd[80], pvd[81], pvd[82], pvd[83]]);
    let block_size = u16::from_le_bytes([pvd[128], pvd[129]]);
    VolumeInfo {
        system_id: text(8, 32),
        volume_id: text(40, 32),
        publisher_id: text(318, 128),
        application_id: text(574, 128),
        volume_size: u64::from(blocks) * u64::from(block_size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_has_descriptors_and_files() {
        let img = build(
            "cidata",
            &[
                ("user-data", b"#cloud-config\n"),
                ("meta-data", b"instance-id: x\n"),
            ],
        );
        assert_eq!(img.len() % SECTOR, 0);
        assert_eq!(&img[16 * SECTOR + 1..16 * SECTOR + 6], b"CD001");
        assert_eq!(&img[16 * SECTOR + 40..16 * SECTOR + 46], b"cidata");
        assert_eq!(img[17 * SECTOR], 2, "Joliet descriptor");
        let text = String::from_utf8_lossy(&img);
        assert!(text.contains("#cloud-config"));
        assert!(text.contains("USER_DAT.;1"));
        // Joliet name in UCS-2.
        let joliet: Vec<u8> = "user-data"
            .encode_utf16()
            .flat_map(|u| u.to_be_bytes())
            .collect();
        assert!(img.windows(joliet.len()).any(|w| w == joliet.as_slice()));
    }

    /// isoinfo (genisoimage, installed by tools/libvirtd-netns.sh) reads our
    /// image back: the volume label, the Joliet names and each file's bytes.
    #[test]
    fn isoinfo_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed.iso");
        std::fs::write(
            &path,
            build(
                "cidata",
                &[("user-data", b"hello"), ("network-config", b"v: 2")],
            ),
        )
        .unwrap();
        let isoinfo = |args: &[&str]| {
            let out = std::process::Command::new("isoinfo")
                .args(args)
                .arg("-i")
                .arg(&path)
                .output()
                .expect("isoinfo (Debian genisoimage; tools/libvirtd-netns.sh install) runs");
            assert!(
                out.status.success(),
                "isoinfo {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let list = isoinfo(&["-J", "-f"]);
        let mut names: Vec<&str> = list.lines().collect();
        names.sort();
        assert_eq!(names, ["/network-config", "/user-data"], "{list}");
        assert_eq!(isoinfo(&["-J", "-x", "/user-data"]), "hello");
        assert_eq!(isoinfo(&["-J", "-x", "/network-config"]), "v: 2");
        let descriptor = isoinfo(&["-d"]);
        assert!(descriptor.contains("Volume id: cidata"), "{descriptor}");
    }

    #[test]
    fn reads_the_primary_volume_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.iso");
        let image = build("cidata", &[("user-data", b"hello")]);
        std::fs::write(&path, &image).unwrap();
        let info = read_volume_info(&path).unwrap().unwrap();
        assert_eq!(info.volume_id, "cidata");
        assert_eq!(info.volume_size, image.len() as u64);
        std::fs::write(&path, b"not an image").unwrap();
        assert_eq!(read_volume_info(&path).unwrap(), None);
    }
}
