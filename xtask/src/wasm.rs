//! Just enough of the WebAssembly binary format to list a module's imports.

use anyhow::{Result, bail};

/// Every import of the module in `bytes`, as (module, name).
pub(crate) fn imports(bytes: &[u8]) -> Result<Vec<(String, String)>> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(8)? != b"\0asm\x01\0\0\0" {
        bail!("not a WebAssembly module (version 1)");
    }
    let mut imports = Vec::new();
    while r.at < bytes.len() {
        let id = r.byte()?;
        let len = r.leb()? as usize;
        let section = r.take(len)?;
        if id != 2 {
            continue;
        }
        let mut s = Reader { bytes: section, at: 0 };
        for _ in 0..s.leb()? {
            let module = s.name()?;
            let name = s.name()?;
            match s.byte()? {
                0 => {
                    s.leb()?; // a function's type index
                }
                1 => {
                    s.byte()?; // a table's element type, then its limits
                    s.limits()?;
                }
                2 => s.limits()?,
                3 => {
                    s.byte()?; // a global's value type and mutability
                    s.byte()?;
                }
                4 => {
                    s.byte()?; // a tag's attribute and type index
                    s.leb()?;
                }
                kind => bail!("import {module}.{name} of unknown kind {kind}"),
            }
            imports.push((module, name));
        }
    }
    Ok(imports)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let Some(end) = end else { bail!("the module ends early at byte {}", self.at) };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn leb(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        bail!("a LEB128 number longer than 64 bits")
    }

    fn name(&mut self) -> Result<String> {
        let len = self.leb()? as usize;
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }

    fn limits(&mut self) -> Result<()> {
        let flags = self.byte()?;
        self.leb()?;
        if flags & 1 != 0 {
            self.leb()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::imports;

    #[test]
    fn imports_are_listed_by_module_and_name() {
        // (module (import "env" "memcpy" (func)) (import "wbg" "__wbg_log" (func)))
        let module = [
            b"\0asm\x01\0\0\0".as_slice(),
            &[1, 4, 1, 0x60, 0, 0],
            &[2, 24, 2, 3],
            b"env",
            &[6],
            b"memcpy",
            &[0, 0, 3],
            b"wbg",
            &[3],
            b"log",
            &[0, 0],
        ]
        .concat();
        let found = imports(&module).unwrap();
        assert_eq!(found, [("env".into(), "memcpy".into()), ("wbg".into(), "log".into())]);
        assert!(imports(&module[..module.len() - 2]).is_err());
        assert!(imports(b"\0asm\x02\0\0\0").is_err());
    }
}
