"""Money is integer fen (分) everywhere; yuan appear only when shown to people."""


def fen_to_yuan_text(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"
