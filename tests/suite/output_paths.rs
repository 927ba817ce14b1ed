//! Output that cannot be written: a directory that is not one, a read-only directory, and a
//! file system that refuses bytes part-way (a file-size limit, which fails a write the way a
//! full disk does). Each command ends with one line naming the file, a non-zero exit, no
//! temporary files, and whatever was at the target before still whole.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::fixtures::{synthetic, write_dataset};

/// Runs the binary; with `limit`, every file it writes may hold at most that many bytes, and
/// a write past it fails with `EFBIG` instead of killing the process (as `ENOSPC` would on a
/// full disk).
fn mnist_flow(args: &[&str], limit: Option<u64>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mnist-flow"));
    command.args(args);
    if let Some(bytes) = limit {
        // SAFETY: between fork and exec only async-signal-safe calls are made.
        unsafe {
            command.pre_exec(move || {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let cap = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &cap) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    command.output().expect("the binary runs")
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Every file under `dir`, as paths relative to it, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    found.sort();
    found
}

/// The command failed in one line that names `name`, and left no temporary file.
fn refused(out: &Output, name: &str, dir: &Path) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it succeeded; stderr: {err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<_> = err.lines().filter(|l| !l.starts_with("[INFO")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(err.contains(name), "expected `{name}` in: {err}");
    let left: Vec<_> = files(dir)
        .into_iter()
        .filter(|f| f.to_string_lossy().contains("tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn a_full_disk_leaves_the_previous_file_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pth =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notebook/notebook-tiny.pth");
    let (export, import, samples) = (
        dir.join("model.safetensors"),
        dir.join("notebook.mfc"),
        dir.join("samples"),
    );
    let sample = |limit| {
        let args = [
            "sample",
            "--labels",
            "01",
            "--steps",
            "1",
            "--out",
            text(&samples),
        ];
        mnist_flow(&args, limit)
    };
    let jobs: [(&str, &Path, Box<dyn Fn(Option<u64>) -> Output>); 3] = [
        (
            "model.safetensors",
            &export,
            Box::new(|limit| mnist_flow(&["export", "--out", text(&export)], limit)),
        ),
        (
            "notebook.mfc",
            &import,
            Box::new(|limit| {
                mnist_flow(
                    &["import", "--pth", text(&pth), "--out", text(&import)],
                    limit,
                )
            }),
        ),
        (
            "images-idx3-ubyte",
            &samples.join("images-idx3-ubyte"),
            Box::new(sample),
        ),
    ];
    for (name, target, run) in jobs {
        let first = run(None);
        assert!(
            first.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&first.stderr)
        );
        let before = std::fs::read(target).unwrap();
        assert!(before.len() > 512, "{name} is only {} bytes", before.len());
        let out = run(Some(512));
        refused(&out, name, dir);
        assert!(std::fs::read(target).unwrap() == before, "{name} changed");
    }
}

#[test]
fn a_full_disk_during_training_leaves_no_checkpoint_half_written() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("data"), tmp.path().join("run"));
    write_dataset(&data, &synthetic(20));
    let args = [
        "train",
        "--data",
        text(&data),
        "--out",
        text(&run),
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--eval-images",
        "4",
        "--sample-steps",
        "1",
    ];
    // Room for the configuration and the loss log, not for the checkpoint.
    let out = mnist_flow(&args, Some(16 * 1024));
    refused(&out, "checkpoint", &run);
    assert!(!run.join("checkpoint.mfc").exists());
    assert!(run.join("config.json").is_file());
}

#[test]
fn an_output_directory_that_cannot_be_made_is_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"in the way").unwrap();
    let inside = file.join("out");
    for args in [
        vec![
            "sample",
            "--labels",
            "1",
            "--steps",
            "1",
            "--out",
            text(&inside),
        ],
        vec!["export", "--out", text(&inside.join("m.safetensors"))],
    ] {
        let out = mnist_flow(&args, None);
        refused(&out, "a-file", tmp.path());
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"in the way");
}

#[test]
fn a_read_only_directory_is_one_line() {
    // The superuser writes through permissions, so the directory is read-only only to others.
    if unsafe { libc::geteuid() } == 0 {
        eprintln!("skipped: running as root, for whom no directory is read-only");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let locked = tmp.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = mnist_flow(
        &["export", "--out", text(&locked.join("m.safetensors"))],
        None,
    );
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    refused(&out, "m.safetensors", tmp.path());
    assert!(files(&locked).is_empty());
}
