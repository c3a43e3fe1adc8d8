//! The bindings as the tablet apps use them, tested in the foreign languages
//! against a real sync server:
//! - Python: tests/python/test_tablets.py (the full scenario);
//! - Kotlin on the JVM: tests/kotlin/TabletTest.kts (the same, in part);
//! - Swift: tests/swift/main.swift (one tablet: enrol, cases, typed errors,
//!   async syncs), compiled with the generated Swift and linked against the
//!   library by Swift 6 on Linux. Debian 12 has no Swift toolchain, so it
//!   runs in a Debian 13 root with Debian's swiftlang (chroot, in a private
//!   mount namespace: needs root, as CI and the dev machines run).
//!
//! Needs python3, a JDK, JNA, the Kotlin compiler and the Swift root: run
//! `.ci/install-bindings-deps.sh` once. Missing tools fail the test, never
//! skip it. `GUICHET_KOTLINC` (or `GUICHET_BINDINGS_DEPS`, the directory
//! the script installs into), `GUICHET_JNA_JAR` and `GUICHET_SWIFT_ROOT`
//! override where the Kotlin compiler, JNA and the Swift root are looked
//! for.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const INSTALL_HINT: &str = "run .ci/install-bindings-deps.sh (from the repository root) to \
                            install the binding test dependencies";
const BINDGEN: &str = env!("CARGO_BIN_EXE_uniffi-bindgen");
const CRATE_DIR: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn python_kotlin_and_swift_bindings_against_a_real_sync_server() {
    let started = Instant::now();
    let tools = Tools::find();
    let profile_dir = profile_dir();
    let cdylib = cdylib(&profile_dir);
    let server_bin = built(
        &profile_dir,
        &format!("guichet-sync-server{}", std::env::consts::EXE_SUFFIX),
        "guichet-sync-server",
    );

    let work = tempfile::tempdir().unwrap();
    let gen = work.path().join("generated");
    generate(&cdylib, &gen);

    let server_data = work.path().join("server-data");
    let server = Server::start(&server_bin, &server_data);
    let env = vec![
        ("GUICHET_SERVER_URL", server.url.clone()),
        ("GUICHET_SERVER_BIN", path_str(&server_bin)),
        ("GUICHET_SERVER_DATA", path_str(&server_data)),
    ];

    // All three at once: the Kotlin compiler takes most of the time.
    let swift = {
        let (tools, work, cdylib, server_bin, env) = (
            tools.clone(),
            work.path().to_path_buf(),
            cdylib.clone(),
            server_bin.clone(),
            env.clone(),
        );
        std::thread::spawn(move || run_swift(&tools, &work, &cdylib, &server_bin, &env))
    };
    let python = {
        let (tools, gen, cdylib, env) = (tools.clone(), gen.clone(), cdylib.clone(), env.clone());
        let dir = work.path().join("python-run");
        std::thread::spawn(move || run_python(&tools, &gen, &cdylib, &dir, &env))
    };
    let kotlin = run_kotlin(
        &tools,
        &gen,
        &cdylib,
        &profile_dir,
        &work.path().join("kotlin-run"),
        &env,
    );
    let python = python.join().expect("the Python runner");
    let swift = swift.join().expect("the Swift runner");

    let mut failures = Vec::new();
    for (name, outcome) in [("Python", python), ("Kotlin", kotlin), ("Swift", swift)] {
        match outcome {
            Ok(out) => println!("== {name}: passed\n{out}"),
            Err(out) => failures.push(format!("== {name}: FAILED\n{out}")),
        }
    }
    println!(
        "foreign binding tests took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        panic!(
            "{}\n== sync server log\n{}",
            failures.join("\n"),
            server.log()
        );
    }
}

/// The foreign toolchains; a missing one fails the test with the way out.
#[derive(Clone)]
struct Tools {
    python: PathBuf,
    kotlinc: PathBuf,
    jna: PathBuf,
    coroutines: PathBuf,
    /// A Debian 13 root with swiftlang (see .ci/install-bindings-deps.sh).
    swift_root: PathBuf,
}

impl Tools {
    fn find() -> Tools {
        let mut missing = Vec::new();
        let python = PathBuf::from("python3");
        if !runs(Command::new(&python).arg("--version")) {
            missing.push("python3 (not on PATH)".to_string());
        }
        if !runs(Command::new("java").arg("-version")) {
            missing.push("java (a JDK, not on PATH)".to_string());
        }
        let kotlinc = match std::env::var_os("GUICHET_KOTLINC") {
            Some(path) => PathBuf::from(path),
            None => {
                let deps = match std::env::var_os("GUICHET_BINDINGS_DEPS") {
                    Some(dir) => PathBuf::from(dir),
                    None => home().join(".cache/guichet-bindings"),
                };
                deps.join("node_modules/kotlin-compiler/bin/kotlinc")
            }
        };
        if !kotlinc.is_file() {
            missing.push(format!("the Kotlin compiler at {}", kotlinc.display()));
        }
        // The compiler ships kotlinx-coroutines, which uniffi's async
        // Kotlin needs (an Android app has it as a dependency).
        let coroutines = kotlinc
            .parent()
            .and_then(Path::parent)
            .map(|home| home.join("lib/kotlinx-coroutines-core-jvm.jar"))
            .unwrap_or_default();
        if kotlinc.is_file() && !coroutines.is_file() {
            missing.push(format!("kotlinx-coroutines at {}", coroutines.display()));
        }
        let jna = std::env::var_os("GUICHET_JNA_JAR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/share/java/jna.jar"));
        if !jna.is_file() {
            missing.push(format!("JNA at {}", jna.display()));
        }
        let swift_root = match std::env::var_os("GUICHET_SWIFT_ROOT") {
            Some(path) => PathBuf::from(path),
            None => match std::env::var_os("GUICHET_BINDINGS_DEPS") {
                Some(dir) => PathBuf::from(dir),
                None => home().join(".cache/guichet-bindings"),
            }
            .join("swift-trixie"),
        };
        if !swift_root.join(".guichet-swift-ready").is_file() {
            missing.push(format!("the Swift root at {}", swift_root.display()));
        }
        assert!(
            missing.is_empty(),
            "the binding tests cannot run: missing {}.\n{INSTALL_HINT}",
            missing.join(", ")
        );
        Tools {
            python,
            kotlinc,
            jna,
            coroutines,
            swift_root,
        }
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

fn runs(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `<target>/<profile>`, from this test binary's own path
/// (`<target>/<profile>/deps/foreign-<hash>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("the test binary lives in <target>/<profile>/deps")
}

/// The library as built with this test. `cargo test` builds it (lib and
/// cdylib at once) into `deps/` without copying it up to `<profile>/`, where
/// an older one may lie: take `deps/` first.
fn cdylib(profile_dir: &Path) -> PathBuf {
    let file = format!(
        "{}guichet_mobile{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let fresh = profile_dir.join("deps").join(&file);
    if fresh.is_file() {
        return fresh;
    }
    built(profile_dir, &file, "guichet-mobile")
}

/// An artifact of the workspace in `<target>/<profile>`, built with cargo
/// (same target directory and profile) when it is not there.
fn built(profile_dir: &Path, file: &str, package: &str) -> PathBuf {
    let path = profile_dir.join(file);
    if path.is_file() {
        return path;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(Path::new(CRATE_DIR).join("Cargo.toml"))
        .args(["-p", package]);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
    }
    // What cargo set for this test would make the build scripts of the
    // dependencies rerun: build as from a shell.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_PRIMARY_",
        ]
        .iter()
        .any(|p| name.starts_with(p))
            || name == "CARGO_TARGET_TMPDIR"
            || name == "CARGO_RUSTC_CURRENT_DIR"
        {
            cmd.env_remove(&*name);
        }
    }
    if let Some(target_dir) = profile_dir.parent() {
        cmd.env("CARGO_TARGET_DIR", target_dir);
    }
    let status = cmd.status().expect("run cargo build");
    assert!(
        status.success() && path.is_file(),
        "cargo build -p {package} did not produce {}",
        path.display()
    );
    path
}

/// Kotlin (JVM and Android), Swift and Python sources from the built
/// library, as README.md tells app developers to generate them.
fn generate(cdylib: &Path, out: &Path) {
    for (language, config, dir) in [
        ("kotlin", "bindgen.toml", "kotlin"),
        ("kotlin", "bindgen-android.toml", "android"),
        ("swift", "bindgen.toml", "swift"),
        ("python", "bindgen.toml", "python"),
    ] {
        let output = Command::new(BINDGEN)
            .args(["generate", "--library"])
            .arg(cdylib)
            .args(["--language", language, "--no-format", "--config"])
            .arg(Path::new(CRATE_DIR).join(config))
            .arg("--out-dir")
            .arg(out.join(dir))
            .output()
            .expect("run uniffi-bindgen");
        assert!(
            output.status.success(),
            "uniffi-bindgen generate --language {language} --config {config} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let android = std::fs::read_to_string(out.join("android/guichet/mobile/guichet_mobile.kt"))
        .expect("the Android Kotlin source");
    assert!(android.contains("android.system.SystemCleaner"));
}

fn run_python(
    tools: &Tools,
    gen: &Path,
    cdylib: &Path,
    dir: &Path,
    env: &[(&str, String)],
) -> Result<String, String> {
    let module_dir = gen.join("python");
    // The generated module loads the library from its own directory.
    link_or_copy(
        cdylib,
        &module_dir.join(cdylib.file_name().unwrap_or_default()),
    )?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&tools.python);
    cmd.arg(Path::new(CRATE_DIR).join("tests/python/test_tablets.py"))
        .env("PYTHONPATH", &module_dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("GUICHET_TEST_DIR", dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_timeout(cmd, Duration::from_secs(150))
}

fn run_kotlin(
    tools: &Tools,
    gen: &Path,
    cdylib: &Path,
    profile_dir: &Path,
    dir: &Path,
    env: &[(&str, String)],
) -> Result<String, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let source = gen.join("kotlin/guichet/mobile/guichet_mobile.kt");
    let jar = compiled_kotlin(tools, &source, profile_dir)?;
    let lib_dir = cdylib.parent().unwrap_or(Path::new("."));
    let classpath =
        std::env::join_paths([&jar, &tools.jna, &tools.coroutines]).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&tools.kotlinc);
    cmd.arg("-cp")
        .arg(&classpath)
        .arg("-script")
        .arg(Path::new(CRATE_DIR).join("tests/kotlin/TabletTest.kts"))
        .env(
            "JAVA_OPTS",
            format!("-Djna.library.path={}", lib_dir.display()),
        )
        .env("LD_LIBRARY_PATH", lib_dir)
        .env("GUICHET_TEST_DIR", dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut out = format!("(generated Kotlin compiled into {})\n", jar.display());
    out += &run_with_timeout(cmd, Duration::from_secs(240))?;
    Ok(out)
}

/// Where the test's work directory appears inside the Swift root.
const SWIFT_WORK: &str = "/guichet-work";

/// Compiles tests/swift/main.swift with the generated Swift against the
/// library and runs it, inside the Swift root: the work directory is bound
/// at /guichet-work and /proc mounted in a mount namespace of its own, so
/// nothing stays mounted. The server it syncs with is this test's, on
/// loopback.
fn run_swift(
    tools: &Tools,
    work: &Path,
    cdylib: &Path,
    server_bin: &Path,
    env: &[(&str, String)],
) -> Result<String, String> {
    let dir = work.join("swift-run");
    std::fs::create_dir_all(dir.join("tablet")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(tools.swift_root.join(&SWIFT_WORK[1..])).map_err(|e| e.to_string())?;
    // Copies, not symlinks: the host's paths do not exist inside the root.
    let lib_name = cdylib.file_name().unwrap_or_default();
    for (from, to) in [
        (cdylib, dir.join(lib_name)),
        (server_bin, dir.join("guichet-sync-server")),
        (
            &Path::new(CRATE_DIR).join("tests/swift/main.swift"),
            dir.join("main.swift"),
        ),
    ] {
        std::fs::hard_link(from, &to)
            .or_else(|_| std::fs::copy(from, &to).map(|_| ()))
            .map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))?;
    }
    let gen = format!("{SWIFT_WORK}/generated/swift");
    let run = format!("{SWIFT_WORK}/swift-run");
    let inside = format!(
        "set -e; cd {run}; \
         swiftc -Xcc -fmodule-map-file={gen}/GuichetMobileFFI.modulemap -I {gen} \
           {gen}/GuichetMobile.swift main.swift -L . -lguichet_mobile -o tablet-test; \
         LD_LIBRARY_PATH=. ./tablet-test"
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--fork", "--kill-child", "--", "/bin/sh", "-c"])
        .arg(
            r#"mount --bind "$2" "$1/guichet-work" && mount -t proc proc "$1/proc" \
               && exec chroot "$1" /bin/sh -c "$3""#,
        )
        .arg("sh")
        .arg(&tools.swift_root)
        .arg(work)
        .arg(inside)
        // Host tools first (unshare, mount, chroot), then swiftc in the root.
        .env(
            "PATH",
            "/usr/bin:/bin:/usr/sbin:/sbin:/usr/libexec/swift/bin",
        );
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env("GUICHET_SERVER_BIN", format!("{run}/guichet-sync-server"))
        .env("GUICHET_SERVER_DATA", format!("{SWIFT_WORK}/server-data"))
        .env("GUICHET_TEST_DIR", format!("{run}/tablet"));
    run_with_timeout(cmd, Duration::from_secs(240))
}

/// The generated Kotlin, compiled once per content: a jar cached in the
/// target directory, since kotlinc takes a good 20 s.
fn compiled_kotlin(tools: &Tools, source: &Path, profile_dir: &Path) -> Result<PathBuf, String> {
    let text = std::fs::read(source).map_err(|e| format!("{}: {e}", source.display()))?;
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    tools.kotlinc.hash(&mut hasher);
    let cache = profile_dir.join("guichet-mobile-kotlin");
    let jar = cache.join(format!("guichet-mobile-{:016x}.jar", hasher.finish()));
    if jar.is_file() {
        return Ok(jar);
    }
    std::fs::create_dir_all(&cache).map_err(|e| e.to_string())?;
    let partial = cache.join(format!("partial-{}.jar", std::process::id()));
    let classpath =
        std::env::join_paths([&tools.jna, &tools.coroutines]).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&tools.kotlinc);
    cmd.arg(source)
        .arg("-cp")
        .arg(&classpath)
        .arg("-nowarn")
        .arg("-d")
        .arg(&partial);
    run_with_timeout(cmd, Duration::from_secs(240))
        .map_err(|out| format!("compiling the generated Kotlin failed:\n{out}"))?;
    std::fs::rename(&partial, &jar).map_err(|e| e.to_string())?;
    // Keep only this one.
    if let Ok(entries) = std::fs::read_dir(&cache) {
        for entry in entries.flatten() {
            if entry.path() != jar {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(jar)
}

fn link_or_copy(from: &Path, to: &Path) -> Result<(), String> {
    let _ = std::fs::remove_file(to);
    #[cfg(unix)]
    if std::os::unix::fs::symlink(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))
}

/// Runs a command to its end, or kills it after `limit`. Ok with its
/// output when it succeeds, Err with its output (and why) otherwise.
fn run_with_timeout(mut cmd: Command, limit: Duration) -> Result<String, String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout.join().unwrap_or_default()),
        String::from_utf8_lossy(&stderr.join().unwrap_or_default())
    );
    match status {
        Some(s) if s.success() => Ok(text),
        Some(s) => Err(format!("{what} exited with {s}\n{text}")),
        None => Err(format!("{what} killed after {} s\n{text}", limit.as_secs())),
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

/// A real `guichet-sync-server` on loopback.
struct Server {
    child: Child,
    url: String,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    fn start(bin: &Path, data_dir: &Path) -> Server {
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start guichet-sync-server");
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let (tx, sink) = (tx.clone(), log.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(at) = line.find("listening on http://") {
                        let addr = line[at + "listening on http://".len()..].trim().to_string();
                        let _ = tx.send(addr);
                    }
                    if let Ok(mut log) = sink.lock() {
                        log.push(line);
                    }
                }
            });
        }
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => Server {
                child,
                url: format!("http://{addr}"),
                log,
            },
            Err(_) => {
                let _ = child.kill();
                let log = log.lock().map(|l| l.join("\n")).unwrap_or_default();
                panic!("the sync server did not say where it listens:\n{log}");
            }
        }
    }

    fn log(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
