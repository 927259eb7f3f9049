import Foundation
import Testing
@testable import handset_emu

/// Issue 12 item 8: the emulator's fetch service reaches https only (file:// would read the gateway's own files).
@Suite struct EmuServicesFetchTests {
    @Test(arguments: ["file:///etc/hostname", "http://127.0.0.1:1/", "ftp://example.com/x", "FILE:///etc/passwd",
                      "https:///etc/hostname", "-o/tmp/x", "dict://127.0.0.1:11211/stat", "/etc/hostname"])
    func fetchRefusesEverythingButHTTPS(_ url: String) {
        let (status, body) = EmuServices().fetch(device: 1, url: url)
        #expect(status == 400, "\(url)")
        #expect(String(decoding: body, as: UTF8.self) == "only https:// URLs may be fetched")
    }

    /// An https URL still goes to curl (nothing listens on port 1, so curl fails: 502, not the 400 refusal).
    @Test func fetchStillTriesHTTPS() {
        #expect(EmuServices().fetch(device: 1, url: "https://127.0.0.1:1/").status == 502)
    }
}
