fn main() -> std::process::ExitCode {
    kinema_cli::main()
}
