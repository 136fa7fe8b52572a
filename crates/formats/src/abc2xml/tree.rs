//! A mutable element tree with ElementTree's data model (`text`, `tail`, ordered attributes) and
//! the exact bytes `ElementTree.tostring(root, encoding='unicode')` writes for it.
//!
//! abc2xml keeps references to elements it has already placed (the previous note's beam, the
//! tuplet modifiers of the open tuplet, the notations of an open tie) and edits them later, so
//! the tree is an arena: a [`NodeId`] stays valid when its element moves or is removed.

/// Index of an element in its [`Tree`].
pub(crate) type NodeId = usize;

#[derive(Debug, Clone)]
struct Node {
    tag: String,
    attrs: Vec<(String, String)>,
    text: Option<String>,
    tail: Option<String>,
    children: Vec<NodeId>,
}

/// The arena holding every element created for one score.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    nodes: Vec<Node>,
}

/// Spaces per indentation level (abc2xml's `addElem`).
const INDENT: usize = 2;

impl Tree {
    /// `E.Element(tag, **attrs)`.
    pub(crate) fn element(&mut self, tag: &str, attrs: &[(&str, &str)]) -> NodeId {
        self.nodes.push(Node {
            tag: tag.to_string(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            text: None,
            tail: None,
            children: Vec::new(),
        });
        self.nodes.len() - 1
    }

    pub(crate) fn tag(&self, id: NodeId) -> &str {
        &self.nodes[id].tag
    }

    pub(crate) fn set_tag(&mut self, id: NodeId, tag: &str) {
        self.nodes[id].tag = tag.to_string();
    }

    pub(crate) fn text(&self, id: NodeId) -> Option<&str> {
        self.nodes[id].text.as_deref()
    }

    pub(crate) fn set_text(&mut self, id: NodeId, text: impl Into<String>) {
        self.nodes[id].text = Some(text.into());
    }

    /// `elem.get(name)`.
    pub(crate) fn get(&self, id: NodeId, name: &str) -> Option<&str> {
        self.nodes[id]
            .attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `elem.set(name, value)`: replaces in place, or appends a new attribute.
    pub(crate) fn set(&mut self, id: NodeId, name: &str, value: impl Into<String>) {
        let value = value.into();
        let attrs = &mut self.nodes[id].attrs;
        match attrs.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => attrs.push((name.to_string(), value)),
        }
    }

    pub(crate) fn children(&self, id: NodeId) -> &[NodeId] {
        &self.nodes[id].children
    }

    /// `parent.remove(child)`: the first occurrence.
    pub(crate) fn remove(&mut self, parent: NodeId, child: NodeId) {
        let children = &mut self.nodes[parent].children;
        if let Some(pos) = children.iter().position(|&c| c == child) {
            children.remove(pos);
        }
    }

    /// abc2xml's `addElem`: appends `child` and indents it for nesting depth `level`.
    pub(crate) fn add(&mut self, parent: NodeId, child: NodeId, level: usize) {
        match self.nodes[parent].children.last().copied() {
            Some(last) => {
                let tail = self.nodes[last].tail.get_or_insert_with(String::new);
                tail.push_str(&" ".repeat(INDENT));
            }
            None => {
                self.nodes[parent].text = Some(format!("\n{}", " ".repeat(level * INDENT)));
            }
        }
        self.nodes[parent].children.push(child);
        self.nodes[child].tail = Some(format!(
            "\n{}",
            " ".repeat(level.saturating_sub(1) * INDENT)
        ));
    }

    /// abc2xml's `addElemT`: a new element with text, added at `level`.
    pub(crate) fn add_text(
        &mut self,
        parent: NodeId,
        tag: &str,
        text: impl Into<String>,
        level: usize,
    ) -> NodeId {
        let e = self.element(tag, &[]);
        self.set_text(e, text);
        self.add(parent, e, level);
        e
    }

    /// `elem.find(tag)` for a direct child.
    pub(crate) fn find(&self, id: NodeId, tag: &str) -> Option<NodeId> {
        self.nodes[id]
            .children
            .iter()
            .copied()
            .find(|&c| self.nodes[c].tag == tag)
    }

    /// `elem.findall('a/b/c')`: descendants along a path of child tags, in document order.
    pub(crate) fn findall(&self, id: NodeId, path: &str) -> Vec<NodeId> {
        let mut current = vec![id];
        for step in path.split('/') {
            let mut next = Vec::new();
            for &n in &current {
                for &c in &self.nodes[n].children {
                    if self.nodes[c].tag == step {
                        next.push(c);
                    }
                }
            }
            current = next;
        }
        current
    }

    /// `elem.iter(tag)`: every element with that tag in the subtree, in document order.
    pub(crate) fn iter_tag(&self, id: NodeId, tag: &str) -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut stack = vec![id];
        while let Some(n) = stack.pop() {
            if self.nodes[n].tag == tag {
                out.push(n);
            }
            for &c in self.nodes[n].children.iter().rev() {
                stack.push(c);
            }
        }
        out
    }

    /// `ElementTree.tostring(root, encoding='unicode')`.
    pub(crate) fn serialize(&self, root: NodeId) -> String {
        let mut out = String::new();
        self.write(root, &mut out);
        out
    }

    fn write(&self, id: NodeId, out: &mut String) {
        let node = &self.nodes[id];
        out.push('<');
        out.push_str(&node.tag);
        for (k, v) in &node.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            escape_attribute(v, out);
            out.push('"');
        }
        let text = node.text.as_deref().unwrap_or("");
        if !text.is_empty() || !node.children.is_empty() {
            out.push('>');
            escape_text(text, out);
            for &c in &node.children {
                self.write(c, out);
            }
            out.push_str("</");
            out.push_str(&node.tag);
            out.push('>');
        } else {
            out.push_str(" />");
        }
        if let Some(tail) = &node.tail {
            escape_text(tail, out);
        }
    }
}

fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
}

fn escape_attribute(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#09;"),
            _ => out.push(c),
        }
    }
}
