import ArgumentParser
import Foundation

/// Host-side tool: runs the emulated world, and the small tools bench testers and interop debuggers use.
/// Each subcommand lives in its own file; register it in `subcommands` below.
@main
struct HandsetEmu: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "handset-emu",
        abstract: "Handset firmware emulator, modem simulator and debugging tools.",
        subcommands: [RunCommand.self, ProvisionCommand.self, ESPCommand.self, PDUCommand.self, ModemCommand.self, BenchCommand.self,
                      TortureCommand.self, ESMECommand.self, LoadCommand.self]
    )
}

/// `handset-fw` in this executable's directory. From /proc/self/exe: run from PATH, argv[0] has no directory.
func firmwareBesideThisTool() -> String { besideThisTool("handset-fw") }

/// A tool built beside this one (`handset-fw`, `handset-gateway`).
func besideThisTool(_ name: String) -> String {
    let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: me).resolvingSymlinksInPath().deletingLastPathComponent()
        .appendingPathComponent(name).path
}
