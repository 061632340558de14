"""Interface translations: one dict per language, keyed by the English text.

Why plain dicts and not Babel/gettext: two languages, a few hundred short strings, and
no build step (no .po -> .mo compilation, no extraction tool to run before a release).
A message id is the English text itself, so English needs no catalog and a missing
translation falls back to readable English. ``{name}`` placeholders are ``str.format``
fields and must appear unchanged in the translation (``tests/test_i18n.py`` checks).
Add strings anywhere in ``ZH``; keep related ones together.
"""

from __future__ import annotations

ZH: dict[str, str] = {
    # Navigation
    "Search": "搜索",
    "Ask": "提问",
    "Documents": "文档",
    "Upload": "上传",
    "Admin": "管理",
    "Collections": "知识库",
    "Users": "用户",
    "API tokens": "API 令牌",
    "Jobs": "任务",
    "Log in": "登录",
    "Log out": "退出登录",
    "Language": "语言",
    # Search page
    "Ask a question in any language…": "用任意语言提问…",
    "An English question finds Chinese passages, and a Chinese question finds English ones.": (
        "用英文提问能找到中文段落，用中文提问也能找到英文段落。"
    ),
    "Filters": "筛选",
    "Collection": "知识库",
    "Document type": "文档类型",
    "Any": "不限",
    "PDF": "PDF",
    "Markdown": "Markdown",
    "Chinese": "中文",
    "FAQ": "常见问题",
    "Also in": "另见于",
    "Reranking is unavailable; the results are in first-stage order.": "重排序服务不可用，结果按初排顺序显示。",
    "Exam question": "试题",
    "Tags": "标签",
    "Kind": "段落类型",
    "Section": "章节",
    "Documents with any of the chosen tags": "带有任一所选标签的文档",
    "optional, separated by commas": "可选，用逗号分隔",
    "e.g. handbook, onboarding": "例如：手册，入职",
    "English": "英文",
    "No passages found.": "未找到相关段落。",
    "{n} results in {ms} ms": "找到 {n} 条结果，用时 {ms} 毫秒",
    "Page {n}": "第 {n} 页",
    "page {n}": "第 {n} 页",
    "Open at page {n}": "在第 {n} 页打开",
    "Open section": "打开所在章节",
    "Score": "相关度",
    "score": "相关度",
    "Previous": "上一页",
    "Next": "下一页",
    # Ask page
    "Best answers": "最佳答案",
    "Most relevant sentences are highlighted.": "最相关的句子已高亮显示。",
    "Cite": "引用",
    "Link to this passage": "此段落的链接",
    "An answer written by an assistant will appear here in a later version.": (
        "后续版本将在此处显示由智能助手撰写的回答。"
    ),
    # Documents
    "Status": "状态",
    "queued": "排队中",
    "parsing": "解析中",
    "embedding": "向量化中",
    "ready": "就绪",
    "failed": "失败",
    "running": "运行中",
    "done": "完成",
    "Chunks": "分块数",
    "Pages": "页数",
    "Size": "大小",
    "Uploaded by": "上传者",
    "Date": "日期",
    "Retry": "重试",
    "Delete": "删除",
    "Re-index": "重新索引",
    "Delete {name}?": "确定删除“{name}”吗？",
    "Sections": "章节",
    "Original": "原文件",
    "Download original": "下载原文件",
    "Reason": "原因",
    # Upload
    "Upload documents": "上传文档",
    "Drop files here or click to choose": "将文件拖到此处，或点击选择文件",
    "Maximum size per file: {size}": "单个文件大小上限：{size}",
    "accepted": "已接收",
    "duplicate": "重复",
    "rejected": "已拒绝",
    # Admin
    "Create": "创建",
    "Rename": "重命名",
    "Description": "描述",
    "Embedder": "嵌入器",
    "Dimension": "维度",
    "Model": "模型",
    "Role": "角色",
    "admin": "管理员",
    "editor": "编辑者",
    "reader": "读者",
    "Disabled": "已停用",
    "Enable": "启用",
    "Disable": "停用",
    "Save": "保存",
    "Cancel": "取消",
    "Name": "名称",
    "Created": "创建时间",
    "Last used": "上次使用",
    "Revoke": "吊销",
    "Revoked": "已吊销",
    "Change model": "更换模型",
    "Query instruction": "查询指令",
    "Re-embed every document of {name} with the new model?": "用新模型重新嵌入 {name} 的所有文档？",
    "Knowledge base": "团队知识库",
    "Enabled": "已启用",
    "Copy this token now: it is shown only once.": "请立即复制此令牌：它只会显示这一次。",
    "Attempts": "尝试次数",
    "Error": "错误",
    # Log in
    "Username": "用户名",
    "Password": "密码",
    "Invalid username or password.": "用户名或密码错误。",
    "Too many attempts; try again in {seconds} seconds.": "尝试次数过多，请在 {seconds} 秒后重试。",
    # Errors
    "Page not found": "页面不存在",
    "You do not have permission to do this.": "你没有执行此操作的权限。",
    "Your session expired; reload the page and try again.": "会话已过期，请刷新页面后重试。",
}

CATALOGS: dict[str, dict[str, str]] = {"en": {}, "zh": ZH}
