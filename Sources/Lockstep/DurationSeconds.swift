extension Duration {
    /// The duration in seconds, for figures people read (never for decisions: the clock only says when
    /// to stop, never what runs).
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
