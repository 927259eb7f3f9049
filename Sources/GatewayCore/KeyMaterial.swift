/// Fresh key material for the host side (gateway, opposite party, provisioning), from the system CSPRNG
/// (getrandom on Linux). The handset itself uses mbedTLS CTR-DRBG instead.
public enum KeyMaterial {
    public static func random(_ count: Int) -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<count).map { _ in g.next() }
    }
}
