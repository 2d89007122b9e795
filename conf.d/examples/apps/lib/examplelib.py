# A module on python-path (70-python-setup.toml): `import examplelib` works
# in the applications of that example.
GREETING = "hello from examplelib"
