# Vault password policy "joinery-initial": initial credentials for human
# joiners. 20 characters, every class represented.
length = 20
rule "charset" {
  charset   = "abcdefghijklmnopqrstuvwxyz"
  min-chars = 1
}
rule "charset" {
  charset   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
  min-chars = 1
}
rule "charset" {
  charset   = "0123456789"
  min-chars = 1
}
rule "charset" {
  charset   = "!@#$%^&*-_=+"
  min-chars = 1
}
