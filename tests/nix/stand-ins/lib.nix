# Stand-in for the parts of nixpkgs' lib that the flake and nix/ use, with the real
# names and argument order (nixpkgs lib/attrsets.nix, lib/meta.nix, lib/strings.nix,
# lib/customisation.nix, lib/fileset/default.nix). Where the real function checks its
# arguments, this one checks the same things; getExe is stricter (it throws where the
# real one warns) so a package without meta.mainProgram fails here.
let
  inherit (builtins)
    attrNames
    concatLists
    concatStringsSep
    elem
    filter
    foldl'
    functionArgs
    genList
    isAttrs
    isFunction
    isList
    isPath
    listToAttrs
    map
    pathExists
    readDir
    replaceStrings
    stringLength
    substring
    typeOf
    ;

  hasSuffix =
    suffix: s:
    stringLength s >= stringLength suffix
    && substring (stringLength s - stringLength suffix) (stringLength suffix) s == suffix;
  hasPrefix = prefix: s: substring 0 (stringLength prefix) s == prefix;

  genAttrs =
    names: f:
    listToAttrs (
      map (name: {
        inherit name;
        value = f name;
      }) names
    );

  makeOverridable =
    f: args:
    let
      result = f args;
      override =
        newArgs: makeOverridable f (args // (if isFunction newArgs then newArgs args else newArgs));
    in
    if isAttrs result then result // { inherit override; } else result;

  # A file set here is { _type = "fileset"; files = [ absolute path strings ]; }.
  # Directories a flake would not see (untracked: target/, result*, .git) are skipped.
  untracked =
    name:
    elem name [
      ".git"
      "target"
    ]
    || hasPrefix "result" name;
  walk =
    dir:
    let
      entries = readDir dir;
    in
    concatLists (
      map (
        name:
        let
          path = dir + "/${name}";
          type = entries.${name};
        in
        if untracked name then
          [ ]
        else if type == "directory" then
          walk path
        else
          [
            {
              inherit name type;
              path = toString path;
            }
          ]
      ) (attrNames entries)
    );
  coerce =
    context: value:
    if value._type or null == "fileset" then
      value
    else if !isPath value then
      throw "lib.fileset: ${context} is of type ${typeOf value}, but it should be a file set or a path"
    else if !pathExists value then
      throw "lib.fileset: ${context} (${toString value}) is a path that does not exist"
    else if (readDir (dirOf value)).${baseNameOf value} == "directory" then
      fileset (map (f: f.path) (walk value))
    else
      fileset [ (toString value) ];
  fileset = files: {
    _type = "fileset";
    inherit files;
  };
  # lib/licenses.nix
  licenses = {
    asl20 = {
      spdxId = "Apache-2.0";
      shortName = "asl20";
    };
    mit = {
      spdxId = "MIT";
      shortName = "mit";
    };
  };
  uniq = list: attrNames (genAttrs list (_: null));
  lowerChars = map (i: substring i 1 "abcdefghijklmnopqrstuvwxyz") (genList (i: i) 26);
  upperChars = map (i: substring i 1 "ABCDEFGHIJKLMNOPQRSTUVWXYZ") (genList (i: i) 26);
in
{
  inherit
    concatStringsSep
    genAttrs
    makeOverridable
    replaceStrings
    ;

  # lib/strings.nix
  toUpper = replaceStrings lowerChars upperChars;

  # lib/attrsets.nix: later sets win.
  mergeAttrsList = foldl' (acc: set: acc // set) { };
  filterAttrs =
    pred: set:
    listToAttrs (
      map (name: {
        inherit name;
        value = set.${name};
      }) (filter (name: pred name set.${name}) (attrNames set))
    );

  # lib/attrsets.nix, lib/lists.nix
  optional = cond: x: if cond then [ x ] else [ ];
  optionalAttrs = cond: set: if cond then set else { };
  nameValuePair = name: value: { inherit name value; };
  mapAttrs' = f: set: listToAttrs (map (name: f name set.${name}) (attrNames set));
  mapAttrsToList = f: set: map (name: f name set.${name}) (attrNames set);

  # lib/meta.nix: the real one warns and returns { shortName } for an unknown id; this
  # one throws, so an unmapped license is seen here.
  getLicenseFromSpdxId =
    id:
    let
      known = filter (l: l.spdxId == id) [
        licenses.asl20
        licenses.mit
      ];
    in
    if known == [ ] then
      throw "getLicenseFromSpdxId: no license matches ${id}"
    else
      builtins.head known;

  getExe =
    x:
    if x ? meta.mainProgram then
      "${x}/bin/${x.meta.mainProgram}"
    else
      throw "getExe: ${x.name or "package"} has no meta.mainProgram";

  inherit licenses;
  platforms.linux = [
    "aarch64-linux"
    "x86_64-linux"
  ];

  fileset = {
    maybeMissing =
      path:
      if !isPath path then
        throw "lib.fileset.maybeMissing: Argument is of type ${typeOf path}, but it should be a path instead."
      else if !pathExists path then
        fileset [ ]
      else
        coerce "maybeMissing argument" path;

    unions =
      filesets:
      if !isList filesets then
        throw "lib.fileset.unions: Argument is of type ${typeOf filesets}, but it should be a list instead."
      else
        fileset (uniq (concatLists (map (s: (coerce "unions element" s).files) filesets)));

    union =
      a: b:
      fileset (
        uniq ((coerce "union first argument" a).files ++ (coerce "union second argument" b).files)
      );

    difference =
      positive: negative:
      let
        minus = (coerce "difference negative set" negative).files;
      in
      fileset (filter (f: !elem f minus) (coerce "difference positive set" positive).files);

    fileFilter =
      predicate: path:
      if !isFunction predicate then
        throw "lib.fileset.fileFilter: First argument is of type ${typeOf predicate}, but it should be a function instead."
      else if !isPath path then
        throw "lib.fileset.fileFilter: Second argument is of type ${typeOf path}, but it should be a path instead."
      else if !pathExists path then
        throw "lib.fileset.fileFilter: Second argument (${toString path}) is a path that does not exist."
      else
        fileset (
          map (f: f.path) (
            filter (
              f:
              predicate {
                inherit (f) name type;
                hasExt = ext: hasSuffix ".${ext}" f.name;
              }
            ) (walk path)
          )
        );

    # Like the real one, a cleanSourceWith-style value: crane reads origSrc (for
    # Cargo.toml and Cargo.lock). `files` (relative paths) is for the tests.
    toSource =
      { root, fileset }:
      let
        files = (coerce "toSource `fileset`" fileset).files;
        rootString = toString root + "/";
        outside = filter (f: !hasPrefix rootString f) files;
      in
      if !isPath root then
        throw "lib.fileset.toSource: `root` is of type ${typeOf root}, but it should be a path instead."
      else if outside != [ ] then
        throw "lib.fileset.toSource: `fileset` has files outside `root`: ${concatStringsSep ", " outside}"
      else
        {
          _isLibCleanSourceWith = true;
          origSrc = root;
          name = "source";
          outPath = "/nix/store/00000000000000000000000000000000-source";
          files = map (f: substring (stringLength rootString) (stringLength f) f) files;
        };
  };

  removePrefix =
    prefix: s: if hasPrefix prefix s then substring (stringLength prefix) (stringLength s) s else s;

  # For the stand-ins' own argument checks.
  inherit functionArgs hasPrefix;
}
