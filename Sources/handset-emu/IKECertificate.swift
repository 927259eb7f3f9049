import Foundation

/// A device's X.509 identity for the proxy (issue 15): an Ed25519 key and a certificate issued by a CA the user
/// names, made with Debian's `openssl`. The private key only ever travels through pipes between openssl and this
/// process; it is never written to a file (the registry stores it wrapped under the KEK).
enum IKECertificate {
    struct Failure: Error, CustomStringConvertible { var description: String }

    /// The subjectAltName that carries `identity`, so charon matches the certificate to the IKE identity:
    /// IPv4 address, e-mail (user@host, RFC 822) or DNS name. Nil: none of those.
    static func subjectAltName(_ identity: String) -> String? {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: ".-_@+"))
        guard !identity.isEmpty, identity.unicodeScalars.allSatisfy({ $0.isASCII && allowed.contains($0) }) else { return nil }
        let parts = identity.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4, parts.allSatisfy({ UInt8($0) != nil }) { return "IP:\(identity)" }
        if identity.contains("@") {
            let halves = identity.split(separator: "@", omittingEmptySubsequences: false)
            return halves.count == 2 && !halves[0].isEmpty && halves[1].contains(".") ? "email:\(identity)" : nil
        }
        return identity.contains(".") && !identity.hasPrefix(".") && !identity.hasSuffix(".") ? "DNS:\(identity)" : nil
    }

    /// A fresh key and a certificate for `identity`, signed by the CA (certificate and key files, PEM).
    static func issue(identity: String, caCertificate: String, caKey: String, days: Int = 825,
                      openssl: String = "/usr/bin/openssl") throws -> (certificate: [UInt8], privateKey: [UInt8]) {
        guard let san = subjectAltName(identity) else {
            throw Failure(description: "IKE identity '\(identity)' cannot go into a certificate: use an e-mail, a DNS name or an IPv4 address")
        }
        for f in [caCertificate, caKey] where !FileManager.default.isReadableFile(atPath: f) {
            throw Failure(description: "\(f): not readable")
        }
        var key = try run(openssl, ["genpkey", "-algorithm", "ed25519"], input: [])
        do {
            let cert = try run(openssl, ["req", "-new", "-x509", "-key", "/dev/stdin", "-CA", caCertificate, "-CAkey", caKey,
                                         "-subj", "/CN=\(identity)", "-days", "\(days)",
                                         "-addext", "subjectAltName=\(san)",
                                         "-addext", "basicConstraints=critical,CA:FALSE",
                                         "-addext", "keyUsage=critical,digitalSignature"], input: key)
            guard String(decoding: cert, as: UTF8.self).contains("BEGIN CERTIFICATE") else {
                throw Failure(description: "openssl gave no certificate")
            }
            return (cert, key)
        } catch {
            for i in key.indices { key[i] = 0 }
            throw error
        }
    }

    /// Runs a tool with `input` on stdin and returns its stdout (stderr kept for the error). posix_spawn with pipes:
    /// nothing passes through a file.
    static func run(_ tool: String, _ args: [String], input: [UInt8]) throws -> [UInt8] {
        var inPipe: [Int32] = [0, 0], outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
        guard pipe(&inPipe) == 0, pipe(&outPipe) == 0, pipe(&errPipe) == 0 else { throw Failure(description: "pipe: errno \(errno)") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        for fd in inPipe + outPipe + errPipe { posix_spawn_file_actions_addclose(&actions, fd) }
        let argv = ([tool] + args).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, tool, &actions, nil, argv, environ)
        close(inPipe[0]); close(outPipe[1]); close(errPipe[1])
        guard rc == 0 else {
            close(inPipe[1]); close(outPipe[0]); close(errPipe[0])
            throw Failure(description: "\(tool): cannot start (\(String(cString: strerror(rc))))")
        }
        // stdout and stderr are drained on their own threads while stdin is written: no deadlock on full pipes.
        let out = Drain(fd: outPipe[0]), err = Drain(fd: errPipe[0])
        input.withUnsafeBytes { b in
            var off = 0
            while off < b.count {
                let n = write(inPipe[1], b.baseAddress! + off, b.count - off)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { break }
                off += n
            }
        }
        close(inPipe[1])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let stdout = out.wait(), stderr = err.wait()
        guard status & 0x7F == 0, (status >> 8) & 0xFF == 0 else {
            throw Failure(description: "\(tool) \(args.first ?? ""): \(String(decoding: stderr, as: UTF8.self).prefix(400))")
        }
        return stdout
    }

    /// Reads a descriptor to its end on a thread of its own, then closes it.
    final class Drain: @unchecked Sendable {
        private var data: [UInt8] = []
        private let done = DispatchSemaphore(value: 0)

        init(fd: Int32) {
            Thread.detachNewThread { [self] in
                var buf = [UInt8](repeating: 0, count: 4096)
                while true {
                    let n = read(fd, &buf, buf.count)
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { break }
                    data += buf[0..<n]
                }
                for i in buf.indices { buf[i] = 0 }
                close(fd)
                done.signal()
            }
        }

        func wait() -> [UInt8] {
            done.wait()
            return data
        }
    }
}
